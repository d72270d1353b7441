"""The torch victims' ``device`` parameter: CPU by default, CUDA when asked and present, a clear
error when asked and absent. The GPU checks skip (with the reason) on a machine without one."""

import numpy as np
import pytest
import torch

from recpoison.errors import ConfigError
from recpoison.testing import planted_blocks
from recpoison.victims import make

HAS_CUDA = torch.cuda.is_available()
TORCH_VICTIMS = {
    "gmf": {"d": 8, "epochs": 3, "batch_size": 256},
    "ncf": {"d": 8, "layers": (16, 8, 4), "epochs": 3, "batch_size": 256},
    "lightgcn": {"d": 8, "epochs": 3, "batch_size": 256},
    "autorec": {"hidden": 16, "epochs": 5},
    "cdae": {"factors": 8, "epochs": 2},
    "nsvd": {"factors": 8, "epochs": 5},
    "mf": {"d": 8, "sweeps": 3},
}


@pytest.fixture(scope="module")
def planted():
    return planted_blocks(seed=5)


@pytest.mark.parametrize("name", sorted(TORCH_VICTIMS))
def test_default_device_is_cpu(name, planted):
    m = make(name, **TORCH_VICTIMS[name]).fit(planted)
    assert m.config.device == "cpu"
    assert getattr(m, "device_", torch.device("cpu")).type == "cpu"


@pytest.mark.skipif(HAS_CUDA, reason="a CUDA GPU is present: the missing-GPU error cannot be shown here")
@pytest.mark.parametrize("name", sorted(TORCH_VICTIMS))
def test_cuda_asked_without_a_gpu_is_a_one_line_config_error(name, planted):
    with pytest.raises(ConfigError, match="no CUDA GPU") as exc:
        make(name, **TORCH_VICTIMS[name], device="cuda").fit(planted)
    assert "\n" not in str(exc.value)


@pytest.mark.skipif(not HAS_CUDA, reason="no CUDA GPU on this machine (torch.cuda.is_available() is False)")
@pytest.mark.parametrize("name", sorted(TORCH_VICTIMS))
def test_cuda_fit_runs_on_the_gpu_and_agrees_with_the_cpu(name, planted):
    gpu = make(name, **TORCH_VICTIMS[name], device="cuda", seed=1).fit(planted)
    cpu = make(name, **TORCH_VICTIMS[name], device="cpu", seed=1).fit(planted)
    if hasattr(gpu, "device_"):
        assert gpu.device_.type == "cuda"
    s_gpu, s_cpu = gpu.score(np.arange(20)), cpu.score(np.arange(20))
    assert s_gpu.dtype == np.float32 and np.isfinite(s_gpu).all()
    # the same seeds and data: the two devices differ only by floating-point summation order
    # (and CDAE's corruption masks are drawn on the CPU either way), so the scores correlate
    assert np.corrcoef(s_gpu.ravel(), s_cpu.ravel())[0, 1] > 0.9
    rec = gpu.recommend(np.arange(20), k=5)
    assert rec.shape == (20, 5)
