"""deploy/accelerate/*.yaml parse as accelerate launch configs and say what README claims (bf16, FSDP2 per
Qwen3 decoder layer, ZeRO-3 with offload); the qwen3 profile's launcher points at an existing one."""

from pathlib import Path

from accelerate.commands.config.config_args import load_config_from_file

from varreason.config import load_config

ROOT = Path(__file__).resolve().parents[2]


def test_fsdp_config():
    c = load_config_from_file(str(ROOT / "deploy/accelerate/fsdp.yaml"))
    assert c.distributed_type.value == "FSDP" and c.mixed_precision == "bf16"
    assert c.fsdp_config["fsdp_version"] == 2
    layer = c.fsdp_config["fsdp_transformer_layer_cls_to_wrap"]
    import transformers.models.qwen3.modeling_qwen3 as q

    assert hasattr(q, layer)


def test_zero3_config():
    c = load_config_from_file(str(ROOT / "deploy/accelerate/zero3.yaml"))
    assert c.distributed_type.value == "DEEPSPEED" and c.mixed_precision == "bf16"
    assert c.deepspeed_config["zero_stage"] == 3 and c.deepspeed_config["offload_param_device"] == "cpu"


def test_qwen3_launcher_points_at_a_config():
    la = load_config(ROOT / "params.yaml", "qwen3").train.launcher
    assert la is not None and la.num_processes == 8 and (ROOT / la.config).exists()
