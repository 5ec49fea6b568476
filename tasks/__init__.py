"""Thin Prefect tasks over ``varreason.pipeline``: names, cache policy, retries. No maths here."""
