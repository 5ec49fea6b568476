"""benchmarks/dvc_vs_flow.py: the shim's log becomes one span per stage process (hand-written log)."""

from benchmarks.dvc_vs_flow import stage_spans


def test_stage_spans_pair_each_start_with_its_end(tmp_path):
    log = tmp_path / "stages.log"
    log.write_text(
        "start 100.0 -m varreason.pipeline.run_stage run build-task --profile tiny\n"
        "end 102.5 0 -m varreason.pipeline.run_stage run build-task --profile tiny\n"
        "start 103.0 -m varreason.pipeline.run_stage run train-pi0 --profile tiny\n"
        "end 178.0 0 -m varreason.pipeline.run_stage run train-pi0 --profile tiny\n")
    assert stage_spans(log) == [{"stage": "build-task", "start": 100.0, "end": 102.5},
                                {"stage": "train-pi0", "start": 103.0, "end": 178.0}]
