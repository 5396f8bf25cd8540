"""The DashScope image-editing API's limits, as its reference states them, in one place.

The command parser, the request validation, image preparation and the job code (which draws
new seeds up to MAX_SEED) all use these numbers; keeping one copy means a change in the
reference is one edit here, not a hunt for every place that happened to repeat it. Only the
API's own limits live here: ours (decode caps, aspect ratios we pad to) and Telegram's stay
with the code that needs them.

The reference is ``bailian-image-api.md``; "parameter table" below is the 参数说明 table of the
model named, "size table" the 图像格式规范 → 尺寸限制 table. Ranges are inclusive ``(low, high)``.
"""

from __future__ import annotations

from typing import Final

# --- text --------------------------------------------------------------------------------------

# wanx `input.prompt` and qwen `content[].text`: "≤800字符" (counted as len() of the text).
MAX_PROMPT_CHARS: Final = 800
# qwen `parameters.negative_prompt`: "≤500字符"; wanx takes no negative prompt.
MAX_NEGATIVE_PROMPT_CHARS: Final = 500

# --- wanx2.1-imageedit parameters (parameter table) --------------------------------------------

N_RANGE: Final = (1, 4)  # `parameters.n`: "1-4，默认1"
MAX_SEED: Final = 2_147_483_647  # `parameters.seed`: "0-2147483647" (2**31 - 1)
SEED_RANGE: Final = (0, MAX_SEED)
STRENGTH_RANGE: Final = (0.0, 1.0)  # `parameters.strength`: "[0.0, 1.0]，默认0.5"
# `parameters.{top,bottom,left,right}_scale` of function expand: "[1.0, 2.0]，默认1.0".
EXPAND_SCALE_RANGE: Final = (1.0, 2.0)
# `parameters.upscale_factor` of function super_resolution: "1-4，默认1".
UPSCALE_FACTOR_RANGE: Final = (1, 4)

# --- input images (size table; the parameter tables repeat it per model) -------------------------

# "文件大小 10MB" for both models, read as MiB (10 * 1024 * 1024 bytes).
MAX_IMAGE_BYTES: Final = 10 * 1024 * 1024
# "最小尺寸 512×512, 最大尺寸 4096×4096" (parameter table: "512-4096px"): pixels per side.
WANX_SIDE_RANGE: Final = (512, 4096)
# "最小尺寸 384×384, 最大尺寸 3072×3072" (parameter table: "384-3072px"): pixels per side.
QWEN_SIDE_RANGE: Final = (384, 3072)
