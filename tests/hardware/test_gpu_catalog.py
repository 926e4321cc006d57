"""The device catalog: dense (never sparse) peaks from the datasheets, units converted once, user files,
overrides and clear errors."""

from __future__ import annotations

import pytest

import scalelab
from scalelab.errors import ConfigError, UnknownNameError
from scalelab.hardware import GPUSpec, get_cluster, get_gpu, get_gpu_entry, list_gpu_entries, list_gpus

T = 1e12

ISSUE_DEVICES = ["v100-sxm", "a100-40gb", "a100-80gb", "h100-sxm", "h100-pcie", "h800", "h200", "b200", "gb200",
                 "mi250x", "mi300x", "mi325x", "tpu-v5p"]

# name, dtype, dense peak TFLOP/s from the vendor datasheet (the sparse figure is twice this)
DENSE_PEAKS = [
    ("v100-sxm", "fp16", 125.0),     # V100 SXM2 datasheet
    ("a100-80gb", "bf16", 312.0),    # A100 datasheet: 312 dense / 624 sparse
    ("h100-sxm", "bf16", 989.4),     # H100 SXM datasheet: 989 dense / 1979 sparse
    ("h100-sxm", "fp8", 1978.9),
    ("h100-pcie", "bf16", 756.0),
    ("h200", "bf16", 989.4),         # H200 pages headline 1979 BF16, which is the sparse figure
    ("b200", "bf16", 2250.0),        # DGX B200: 4.5 PF BF16 sparse per GPU
    ("b200", "fp4", 9000.0),
    ("gb200", "fp8", 5000.0),        # NVL72: 720 PF FP8 sparse / 72 GPUs / 2
    ("mi250x", "bf16", 191.5),       # MI250X 383 TF per OAM, two GCDs
    ("mi300x", "bf16", 1307.4),      # MI300X 2614.9 is the sparse figure
    ("mi325x", "fp8", 2614.9),
    ("tpu-v5p", "bf16", 459.0),      # Cloud TPU v5p docs
]


def test_catalog_holds_every_issue_device():
    assert set(ISSUE_DEVICES) <= {g.name for g in list_gpus()}


@pytest.mark.parametrize("name, dtype, tflops", DENSE_PEAKS, ids=[f"{r[0]}-{r[1]}" for r in DENSE_PEAKS])
def test_dense_peaks_match_datasheets(name, dtype, tflops):
    assert get_gpu(name).peak(dtype) == pytest.approx(tflops * T, rel=1e-6)


def test_units_are_converted_once_to_si():
    g = get_gpu("h100-sxm")
    assert g.memory_bytes == 81559 * 2**20              # MiB as nvidia-smi reports an "80 GB" H100
    assert g.usable_memory_bytes == g.memory_bytes - 2**30  # minus the default 1 GiB reserve
    assert g.memory_bandwidth_bytes_per_s == 3.35e12
    assert g.intra_node_bandwidth_bytes_per_s == 450e9  # NVLink4 900 GB/s bidirectional, per direction
    assert g.inter_node_bandwidth_bytes_per_s == 50e9   # 400 Gb/s NIC = 50 GB/s
    assert g.gpus_per_node == 8 and g.power_w == 700


def test_fp8_is_twice_bf16_on_hopper_and_blackwell():
    for name in ("h100-sxm", "h800", "h200", "b200", "gb200", "mi300x"):
        g = get_gpu(name)
        assert g.peak("fp8") == pytest.approx(2 * g.peak("bf16"), rel=1e-3), name


def test_fp4_only_on_blackwell_and_no_bf16_on_v100():
    for g in list_gpus():
        assert ("fp4" in g.peak_flops_per_s) == (g.name in ("b200", "gb200")), g.name
    with pytest.raises(ConfigError) as e:
        get_gpu("v100-sxm").peak("bf16")
    assert "fp16" in str(e.value)  # says what the device has
    with pytest.raises(ConfigError):
        get_gpu("a100-80gb").peak("fp8")


def test_every_device_documents_its_sources_and_efficiencies():
    for e in list_gpu_entries():
        g = e.spec
        assert g.source and e.efficiency_source, g.name
        assert 0 < g.matmul_efficiency <= 1 and 0 < g.network_efficiency <= 1
        assert g.intra_node_bandwidth_bytes_per_s > g.inter_node_bandwidth_bytes_per_s, g.name
        if g.price_per_hour is not None:
            assert e.price_source, g.name


def test_mi250x_is_one_gcd():
    g = get_gpu("mi250x")
    assert g.memory_bytes == 64e9 and g.gpus_per_node == 8


def test_names_and_aliases_are_case_insensitive():
    assert get_gpu("H100") == get_gpu("h100-sxm") == scalelab.get_gpu("H100-SXM5")


def test_unknown_gpu_suggests_close_names():
    with pytest.raises(UnknownNameError) as e:
        get_gpu("h1000")
    assert "h100-sxm" in e.value.suggestions or "h800" in e.value.suggestions
    assert "scalelab gpus" in str(e.value)


def test_user_file_and_overrides(tmp_path):
    p = tmp_path / "my-gpu.toml"
    p.write_text('name = "my-gpu"\nbf16_tflops = 500\nmemory_gb = 96\nhbm_bandwidth_tb_per_s = 4\n'
                 'intra_node_gb_per_s = 300\nnic_gbit_per_s = 200\ngpus_per_node = 4\nmatmul_efficiency = 0.6\n')
    g = get_gpu(p)
    assert isinstance(g, GPUSpec)
    assert g.peak("bf16") == 500e12 and g.memory_bytes == 96e9 and g.inter_node_bandwidth_bytes_per_s == 25e9
    assert g.matmul_efficiency == 0.6 and g.gpus_per_node == 4
    assert get_gpu(str(p), matmul_efficiency=0.4).matmul_efficiency == 0.4
    assert get_cluster(p, n_gpus=10).n_nodes == 3


@pytest.mark.parametrize(
    "body, fragment",
    [
        ('memory_gb = -80\n', "memory_gb must be positive"),
        ('memory_gb = 0\n', "memory_gb must be positive"),
        ('memory_gb = "80GB"\n', "memory_gb must be a number"),
        ('memory_gb = 80\nmatmul_efficiency = 1.5\n', "matmul_efficiency"),
        ('memory_gb = 80\nhbm_bandwith_tb_per_s = 3\n', "did you mean 'hbm_bandwidth_tb_per_s'"),
        ('memory_gb = 80\ngpus_per_node = 7.5\n', "gpus_per_node"),
    ],
    ids=["negative", "zero", "string", "efficiency>1", "typo", "fractional-node"],
)
def test_malformed_gpu_files_name_the_field(tmp_path, body, fragment):
    base = {"name": '"x"', "bf16_tflops": "100", "hbm_bandwidth_tb_per_s": "1", "intra_node_gb_per_s": "100",
            "nic_gbit_per_s": "100", "memory_gb": None}
    lines = [f"{k} = {v}" for k, v in base.items() if v is not None and k + " " not in body]
    p = tmp_path / "bad.toml"
    p.write_text("\n".join(lines) + "\n" + body)
    with pytest.raises(ConfigError) as e:
        get_gpu(p)
    assert fragment in str(e.value)


def test_missing_fields_and_peaks_are_reported(tmp_path):
    p = tmp_path / "bad.toml"
    p.write_text('name = "x"\nmemory_gb = 80\n')
    with pytest.raises(ConfigError, match="missing required field"):
        get_gpu(p)
    p.write_text('name = "x"\nmemory_gb = 80\nhbm_bandwidth_tb_per_s = 1\nintra_node_gb_per_s = 1\n'
                 'nic_gbit_per_s = 1\n')
    with pytest.raises(ConfigError, match="no peak FLOP/s"):
        get_gpu(p)


def test_cluster_defaults_and_checks():
    c = get_cluster("h100-sxm", n_gpus=512)
    assert (c.n_nodes, c.gpus_per_node) == (64, 8)
    assert c.price_per_gpu_hour == get_gpu("h100-sxm").price_per_hour
    assert get_cluster("h100-sxm", n_gpus=4).gpus_per_node == 4
    assert get_cluster("gb200", n_gpus=144).n_nodes == 2  # NVL72 domains
    assert get_cluster("h100-sxm", n_gpus=8, price_per_gpu_hour=1.5).price_per_gpu_hour == 1.5
    assert get_cluster(get_gpu("a100-80gb"), n_gpus=16, matmul_efficiency=0.6).gpu.matmul_efficiency == 0.6
    for bad in (0, -8, 2.5):
        with pytest.raises(ConfigError, match="n_gpus"):
            get_cluster("h100-sxm", n_gpus=bad)
    with pytest.raises(ConfigError, match="price_per_gpu_hour"):
        get_cluster("h100-sxm", n_gpus=8, price_per_gpu_hour=-1)
    with pytest.raises(ConfigError, match="unknown GPUSpec field"):
        get_gpu("h100-sxm", flops=1)


def test_entry_summary_is_in_human_units():
    row = get_gpu_entry("h200").summary()
    assert row["bf16_tflops"] == pytest.approx(989.4) and row["memory_gb"] == 141 and row["fp4_tflops"] is None
