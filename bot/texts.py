"""Every text a user sees, Chinese and English side by side, in one catalogue.

``text(key, lang, **params)`` renders one entry with ``str.format``; values that came from users
must be escaped by the caller (``html.escape``) before they are passed in, since messages are
sent with HTML parse mode. A count's noun is written ``{n:image|images}``: the first form when
``n`` is 1, else the second (English needs it; Chinese measure words do not).
"""

from __future__ import annotations

import html
import string
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.errors import BotError


class Lang(StrEnum):
    ZH = "zh"
    EN = "en"

    @classmethod
    def from_code(cls, code: str | None) -> Lang:
        """Telegram ``language_code`` (``zh-hans``, ``en-US``, ...) to a supported language."""
        if code and code.lower().startswith("zh"):
            return cls.ZH
        return cls.EN


@dataclass(frozen=True)
class Text:
    zh: str
    en: str


CATALOGUE: dict[str, Text] = {
    # --- command parsing (bot/commands.py) ---------------------------------------------------
    "cmd_error_prompt_required": Text(
        zh="/{command} 需要提示词：在命令后面写出要做什么。",
        en="/{command} needs a prompt: say what to do after the command.",
    ),
    "cmd_error_prompt_too_long": Text(
        zh="描述太长：{length} 个字符，最多 {limit} 个。",
        en="The description is too long: {length} characters, at most {limit}.",
    ),
    "cmd_error_negative_too_long": Text(
        zh="反向提示词太长：{length} 个字符，最多 {limit} 个。",
        en="The negative prompt is too long: {length} characters, at most {limit}.",
    ),
    "cmd_error_unknown_option": Text(
        zh="/{command} 没有 {option}= 这个选项。可用的选项：{allowed}",
        en="/{command} takes no {option}= option. Options it takes: {allowed}",
    ),
    "cmd_error_edit_one_image": Text(
        zh="/edit 每次只生成一张图片，不支持 {option}=（数量和种子选项只用于其他命令）。",
        en="/edit makes one image at a time and takes no {option}= (n= and seed= are for "
        "the other commands).",
    ),
    "cmd_error_option_without_name": Text(
        zh="“{value}” 缺少选项名，应写成 名称=值，例如 n=2。",
        en="“{value}” has no option name; write name=value, e.g. n=2.",
    ),
    "cmd_error_unclosed_quote": Text(
        zh="选项 {option} 的引号没有闭合。",
        en="The quote after {option}= is never closed.",
    ),
    # {option} is what the user typed: the key of key=value, or /command for a bare number
    "cmd_error_bad_integer": Text(
        zh="{option} 只能是整数 {expected}（你写的是 {value}）。",
        en="{option} takes a whole number, {expected} (you wrote {value}).",
    ),
    "cmd_error_bad_number": Text(
        zh="{option} 只能是数字 {expected}（你写的是 {value}）。",
        en="{option} takes a number, {expected} (you wrote {value}).",
    ),
    "cmd_error_bad_bool": Text(
        zh="{option} 只能是 是/否，即 {expected}（你写的是 {value}）。",
        en="{option} takes yes or no, {expected} (you wrote {value}).",
    ),
    "cmd_error_bad_ratio": Text(
        zh="{option} 应写成 宽:高 的两个正整数，例如 16:9（你写的是 {value}）。",
        en="{option} takes width:height as two whole numbers, e.g. 16:9 (you wrote {value}).",
    ),
    "cmd_error_out_of_range_integer": Text(
        zh="{option} 只能是 {low}–{high}（你写的是 {value}）。",
        en="{option} takes {low}–{high} (you wrote {value}).",
    ),
    "cmd_error_out_of_range_number": Text(
        zh="{option} 只能是 {low}–{high}（你写的是 {value}）。",
        en="{option} takes {low}–{high} (you wrote {value}).",
    ),
    "cmd_error_negative_not_supported": Text(
        zh="/{command} 不支持反向提示词（{option}），只有 /edit 支持。",
        en="/{command} takes no negative prompt ({option}); only /edit does.",
    ),
    "cmd_error_duplicate_option": Text(
        zh="选项 {option} 给了不止一次。",
        en="The option {option} is given more than once.",
    ),
    "cmd_error_expand_conflict": Text(
        zh="{first} 和 {second} 不能同时使用：扩图请只用一个数字、上下左右、或 ratio= 其中一种。",
        en="{first} and {second} cannot be combined: use one number, or sides, or ratio=.",
    ),
    "cmd_error_expand_nothing": Text(
        zh="没有可扩展的方向：至少一边要大于 1.0，或给出 ratio=。",
        en="Nothing to expand: make at least one side larger than 1.0, or give ratio=.",
    ),
    "cmd_error_style_required": Text(
        zh="请先选择一种局部风格。",
        en="Choose a local style first.",
    ),
    "cmd_localstyle_choose": Text(
        zh="选择一种风格：",
        en="Choose a style:",
    ),
    "localstyle_unknown_style": Text(
        zh="“{style}” 不是八种局部风格之一。",
        en="“{style}” is not one of the eight local styles.",
    ),
    # a working command line per command, shown beside a parse error (bot/commands.py example_key)
    "example_edit": Text(
        zh='/edit 把天空换成晚霞 neg="模糊, 变形"',
        en='/edit make the sky a sunset neg="blurry, distorted"',
    ),
    "example_style": Text(
        zh="/style 转换成法国绘本风格 strength=0.6",
        en="/style turn it into a French picture book strength=0.6",
    ),
    "example_localstyle": Text(zh="/localstyle 冰雕 房子", en="/localstyle ice the house"),
    "example_instruct": Text(
        zh="/instruct 给小狗戴上一顶红色帽子 strength=0.5",
        en="/instruct put a red hat on the dog strength=0.5",
    ),
    "example_erase": Text(zh="/erase 干净的木质桌面", en="/erase a clean wooden table top"),
    "example_dewatermark": Text(zh="/dewatermark", en="/dewatermark"),
    "example_expand": Text(
        zh="/expand 1.5 一家人在公园草坪上", en="/expand 1.5 a family on a lawn in the park"
    ),
    "example_upscale": Text(zh="/upscale 2", en="/upscale 2"),
    "example_colorize": Text(
        zh="/colorize 蓝色背景，黄色叶子，红色花朵",
        en="/colorize blue background, yellow leaves, red flowers",
    ),
    "example_sketch": Text(
        zh="/sketch 一座现代玻璃建筑 线稿=是", en="/sketch a modern glass building sketch=yes"
    ),
    "example_cartoon": Text(
        zh="/cartoon 卡通形象小心翼翼地探出头", en="/cartoon the character peeks out carefully"
    ),
    "cmd_usage_edit": Text(
        zh="<code>/edit 描述</code>：通义千问按描述修改图片。反向提示词：<code>neg=模糊</code>，"
        "含空格时加引号 <code>neg=\"模糊, 变暗\"</code>（也可用 “ ” 或 「」），"
        "或写在单独的 <code>--</code> 之后：<code>/edit 把天空换成晚霞 -- 模糊, 变暗</code>",
        en="<code>/edit description</code>: Qwen edits the photo as described. Negative prompt: "
        "<code>neg=blurry</code>, quoted when it has spaces <code>neg=\"blurry, dark\"</code> "
        "(“ ” or 「」 work too), or everything after a standalone <code>--</code>: "
        "<code>/edit make the sky a sunset -- blurry, dark</code>",
    ),
    "cmd_usage_style": Text(
        zh="<code>/style 描述</code>：整图风格化，如 <code>/style 转换成法国绘本风格</code>。"
        "选项 strength=0~1（越大改动越多），n=1~4，seed=",
        en="<code>/style description</code>: restyle the whole photo, e.g. "
        "<code>/style turn it into a French picture book</code>. Options strength=0-1 (higher "
        "changes more), n=1-4, seed=",
    ),
    "cmd_usage_localstyle": Text(
        zh="<code>/localstyle 风格 对象</code>：把对象变成一种风格："
        "冰雕、云朵、花灯、木板、青花瓷、毛茸茸、毛线、气球。"
        "如 <code>/localstyle 冰雕 房子</code>；不写风格会给出按钮。选项 n=、seed=",
        en="<code>/localstyle style subject</code>: turn the subject into a style: ice, cloud, "
        "lantern, wooden, porcelain, fluffy, weaving, balloon. E.g. "
        "<code>/localstyle ice the house</code>; without a style you get buttons. "
        "Options n=, seed=",
    ),
    "cmd_usage_instruct": Text(
        zh="<code>/instruct 指令</code>：按指令添加或修改内容，"
        "如 <code>/instruct 给小狗戴上帽子</code>。选项 strength=0~1，n=1~4，seed=",
        en="<code>/instruct instruction</code>: add or change things, e.g. "
        "<code>/instruct put a hat on the dog</code>. Options strength=0-1, n=1-4, seed=",
    ),
    "cmd_usage_erase": Text(
        zh="<code>/erase [描述]</code>：重绘蒙版（白色区域）部分；留空即删除该处的小物件，"
        "删除大物件时请描述擦除后的画面。选项 n=、seed=",
        en="<code>/erase [description]</code>: repaint the masked (white) area; leave it empty to "
        "remove a small thing there, or describe what should be there instead. Options n=, seed=",
    ),
    "cmd_usage_dewatermark": Text(
        zh="<code>/dewatermark [描述]</code>：去除文字和水印，"
        "如 <code>/dewatermark 去除英文文字</code>。选项 n=、seed=",
        en="<code>/dewatermark [description]</code>: remove text and watermarks, e.g. "
        "<code>/dewatermark remove the English text</code>. Options n=, seed=",
    ),
    "cmd_usage_expand": Text(
        zh="<code>/expand 1.5 [画面描述]</code>：四边各扩展 1.0~2.0 倍；"
        "或分别给出 top= bottom= left= right=（未写的为 1.0）；"
        "或 ratio=16:9 扩成该比例。选项 n=、seed=",
        en="<code>/expand 1.5 [scene]</code>: extend every side by 1.0-2.0; or give top= bottom= "
        "left= right= (unset = 1.0); or ratio=16:9 to reach that shape. Options n=, seed=",
    ),
    "cmd_usage_upscale": Text(
        zh="<code>/upscale [1-4]</code>：高清放大，默认 2 倍，1 倍只提升清晰度。选项 n=、seed=",
        en="<code>/upscale [1-4]</code>: upscale, 2x by default; 1 only sharpens. "
        "Options n=, seed=",
    ),
    "cmd_usage_colorize": Text(
        zh="<code>/colorize [颜色描述]</code>：黑白照片上色，不写描述则自动选色。选项 n=、seed=",
        en="<code>/colorize [colours]</code>: colour a black-and-white photo; without a "
        "description the colours are chosen for you. Options n=, seed=",
    ),
    "cmd_usage_sketch": Text(
        zh="<code>/sketch 描述</code>：从线稿生成图片；"
        "原图本身就是线稿时加 sketch=是。选项 n=、seed=",
        en="<code>/sketch description</code>: draw a picture from line art; "
        "add sketch=yes when the photo already is a sketch. Options n=, seed=",
    ),
    "cmd_usage_cartoon": Text(
        zh="<code>/cartoon 描述</code>：让卡通形象出现在新场景中，如 "
        "<code>/cartoon 卡通形象小心翼翼地探出头</code>。选项 n=、seed=",
        en="<code>/cartoon description</code>: put the cartoon character into a new scene, e.g. "
        "<code>/cartoon the character peeks out carefully</code>. Options n=, seed=",
    ),
    # --- images (bot/images.py) ----------------------------------------------------------------
    "image_not_image": Text(
        zh="这个文件不是我能读取的图片。请发送 JPEG、PNG、WEBP、BMP、TIFF 或 GIF 图片。",
        en="This file is not a picture I can read. Please send a JPEG, PNG, WEBP, BMP, TIFF "
        "or GIF image.",
    ),
    "image_corrupt": Text(
        zh="这张图片已损坏或不完整，无法读取。请重新发送原图。",
        en="This picture is damaged or incomplete and cannot be read. Please send the original "
        "again.",
    ),
    "image_too_many_pixels": Text(
        zh="这张图片像素太多（上限 {max_megapixels} 百万像素）。请缩小后再发送。",
        en="This picture has too many pixels (limit {max_megapixels} megapixels). Please send "
        "a smaller version.",
    ),
    "image_too_small": Text(
        zh="图片太小（{width}×{height}）：短边至少需要 {min_side} 像素。请发送更大的图片。",
        en="The picture is too small ({width}×{height}): the short side needs at least "
        "{min_side} pixels. Please send a larger picture.",
    ),
    "image_aspect_extreme": Text(
        zh="图片太细长（长宽比 {ratio}:1，最多 {max_ratio}:1）。请先裁剪再发送。",
        en="The picture is too long and thin (aspect ratio {ratio}:1, at most {max_ratio}:1). "
        "Please crop it first.",
    ),
    "image_too_large": Text(
        zh="无法把这张图片压缩到 {max_mb} MB 以内。请发送更小的图片。",
        en="I could not bring this picture under {max_mb} MB. Please send a smaller one.",
    ),
    "mask_empty": Text(
        zh="蒙版全是黑色，没有要编辑的区域。请用白色（或不透明的笔画）涂出要修改的部分。",
        en="The mask is all black, so there is nothing to edit. Paint the area to change in "
        "white (or with opaque strokes on a transparent sheet).",
    ),
    "mask_aspect_mismatch": Text(
        zh="蒙版（{mask_width}×{mask_height}）与图片（{width}×{height}）的长宽比不一致。"
        "请在同一张图片上绘制蒙版，不要裁剪或旋转。",
        en="The mask ({mask_width}×{mask_height}) does not have the shape of the picture "
        "({width}×{height}). Draw the mask on the same picture, without cropping or rotating.",
    ),
    "expand_ratio_unreachable": Text(
        zh="无法把这张图片扩展到 {ratio}：宽或高最多扩展到原来的 3 倍，可达到的宽高比在 "
        "{min_ratio} 到 {max_ratio} 之间。",
        en="Cannot expand this picture to {ratio}: its width or height can grow to at most 3 "
        "times, so the reachable width/height ratio is between {min_ratio} and {max_ratio}.",
    ),
    # --- bot, pipeline and handlers --------------------------------------------------------------
    # status of a job
    "status_queued": Text(
        "🕐 已排队（第 {position} 位）。完成后我会把图片回复给你。",
        "🕐 Queued, position {position}. I'll reply with the image when it's ready.",
    ),
    # taken by a worker, waiting for one of DASHSCOPE_MAX_TASKS slots; {ahead} waited before it
    "status_waiting_slot": Text(
        "⏳ 正在等待空闲的处理名额（前面还有 {ahead} 个）…",
        "⏳ Waiting for a free slot ({ahead} ahead)…",
    ),
    "status_working": Text("🎨 正在处理…", "🎨 Working on it…"),
    "status_sending": Text("📤 正在发送…", "📤 Sending…"),
    "status_service_down": Text(
        "⏳ 百炼服务暂时无法响应，你的请求在排队等待，我会继续尝试（尚未扣除额度）。",
        "⏳ The image service is not answering right now. Your request waits and I keep "
        "trying (nothing has been charged).",
    ),
    "status_service_slow": Text(
        "⏳ 百炼服务响应很慢：图片已在制作中，我会一直查询，结果不会丢失。",
        "⏳ The image service is slow to answer. Your image is being made there and I keep "
        "checking: it will not be lost.",
    ),
    # failures of a job (after acceptance); "not_charged" follows each
    "not_charged": Text("本次未扣除额度。", "Nothing was charged."),
    "fail_content": Text(
        "图片或描述未通过内容安全审核，请换一张图片或换个说法。",
        "The image or the prompt was refused by the content check. Try another image or wording.",
    ),
    # the service's own words go to the log; users read advice (bot/errors.py service_advice)
    "fail_invalid": Text(
        "图像服务不接受这个请求。请换一张图片或换个说法再试。",
        "The image service did not accept this request. Please try another photo or other "
        "wording.",
    ),
    "fail_image_size": Text(
        "图像服务无法处理这个尺寸的图片。请换一张更大的图片再试。",
        "The image service cannot use a picture of this size. Please try a larger photo.",
    ),
    "fail_image_unreadable": Text(
        "图像服务无法读取这张图片。请重新发送，或换成 JPEG 或 PNG 格式。",
        "The image service could not read this picture. Please send it again, or as a JPEG "
        "or PNG.",
    ),
    "fail_try_again": Text(
        "图像处理失败：图像服务内部出错。请过一分钟再试。",
        "The edit failed because of a problem inside the image service. Please try again in "
        "a minute.",
    ),
    "fail_account": Text(
        "图像服务暂时不可用，管理员已收到通知。请稍后再试。",
        "The image service is unavailable right now; the admins have been told. Please try later.",
    ),
    # chosen instead of "fail_account" when no admin is configured: nobody was told
    "fail_account_no_admin": Text(
        "图像服务暂时不可用：机器人的百炼账户出了问题，需要运营者处理。请稍后再试。",
        "The image service is unavailable right now: the bot's account has a problem that its "
        "operator must fix. Please try later.",
    ),
    "fail_busy": Text(
        "图像服务繁忙，多次重试后仍未成功。请稍后再试。",
        "The image service is busy and did not answer after several tries. Please try again later.",
    ),
    "fail_unconfirmed": Text(
        "提交时连接中断，无法确认任务是否创建。请重新发送请求。",
        "The connection broke while submitting, so the task could not be confirmed. "
        "Please send the request again.",
    ),
    "fail_expired": Text(
        "结果已过期，无法再下载。请重新发送请求。",
        "The result expired before it could be fetched. Please send the request again.",
    ),
    "fail_task": Text(
        "图像处理失败。请再试一次，或换一张图片。",
        "The edit failed. Please try again, or with another photo.",
    ),
    "fail_broken_result": Text(
        "图像服务返回的结果图片已损坏，无法读取。请重新发送请求。",
        "The image service returned a broken image that cannot be read. Please send the "
        "request again.",
    ),
    "fail_delivery": Text("无法把结果发送给你。", "The result could not be sent to you."),
    "fail_store": Text(
        "机器人暂时无法保存请求，请过一分钟再试。本次未扣除额度。",
        "The bot cannot save requests right now. Please try again in a minute. Nothing was charged.",
    ),
    "fail_generic": Text("出了点问题，请稍后再试。", "Something went wrong. Please try again later."),
    "banned": Text("你已被管理员禁止使用本机器人。", "An admin has blocked you from using this bot."),
    # people the allow-lists leave out (handlers/access.py); the button text is plain, no HTML
    "access_refused": Text(
        "抱歉，这个机器人只对运营者允许的用户开放。你的用户 ID 是 <code>{user_id}</code>："
        "如需使用，请把它发给机器人的运营者。",
        "Sorry, this bot only serves people its operator has allowed. Your user id is "
        "<code>{user_id}</code>: send it to the bot's operator if you would like to use it.",
    ),
    "access_refused_group": Text(
        "抱歉，这个机器人只对运营者允许的用户和群开放。你的用户 ID 是 <code>{user_id}</code>，"
        "本群的 ID 是 <code>{chat_id}</code>：如需使用，请把它们发给机器人的运营者。",
        "Sorry, this bot only serves people and groups its operator has allowed. Your user id "
        "is <code>{user_id}</code> and this group's id is <code>{chat_id}</code>: send them to "
        "the bot's operator if you would like to use it.",
    ),
    "access_refused_button": Text(
        "抱歉，这个机器人只对运营者允许的用户开放。你的用户 ID：{user_id}",
        "Sorry, this bot only serves people its operator has allowed. Your user id: {user_id}",
    ),
    "quota_exceeded": Text(
        "本月额度不足：需要 {requested} 张，剩余 {remaining} 张（每月 {limit} 张）。"
        "额度于 {reset} 重置；需要更多请联系管理员。用 /quota 查看详情。",
        "Not enough quota this month: {requested} {requested:image|images} needed, "
        "{remaining} left (of {limit}). It resets on {reset}; for more before then, ask an "
        "admin. See /quota.",
    ),
    "admin_alert": Text(
        "⚠️ 百炼账户问题：<b>{code}</b> {message}\n用户请求会失败，直到问题解决。",
        "⚠️ Bailian account problem: <b>{code}</b> {message}\nUser requests fail until it is fixed.",
    ),
    # the spend cap (MONTHLY_BUDGET_YUAN) and the other alerts for admins (bot/alerts.py)
    "budget_exceeded": Text(
        "本月机器人的费用预算已用完，暂时不能接受新的请求。预算将于 {reset} 重置，管理员也可以提高预算。",
        "The bot's spending budget for this month is used up, so it cannot take new requests. "
        "The budget resets on {reset}; an admin can also raise it.",
    ),
    "alert_budget_warning": Text(
        "⚠️ {month} 的估算花费已达 ¥{spent}，是月预算 ¥{budget} 的 {percent}%。"
        "预算用完后，新的请求会被拒绝，直到 {reset}。",
        "⚠️ Estimated spend for {month} is ¥{spent}, {percent}% of the ¥{budget} monthly "
        "budget. Once it is used up, new requests are refused until {reset}.",
    ),
    "alert_budget_reached": Text(
        "⛔ {month} 的月预算 ¥{budget} 已用完（估算花费 ¥{spent}）：超出预算的请求会被拒绝，"
        "直到 {reset}。要继续服务，请提高 MONTHLY_BUDGET_YUAN 并重启机器人。",
        "⛔ The ¥{budget} monthly budget for {month} is reached (estimated spend ¥{spent}): "
        "requests that would go over it are refused until {reset}. To keep serving, raise "
        "MONTHLY_BUDGET_YUAN and restart the bot.",
    ),
    "alert_started": Text(
        "✅ 机器人已启动，版本 {version}；继续处理未完成的任务 {resumed} 个。",
        "✅ The bot started, version {version}; unfinished jobs resumed: {resumed}.",
    ),
    "alert_stuck": Text(
        "⚠️ 超过 {minutes} 分钟没有进展的任务：{count} 个（{jobs}）。用 /queue 查看。",
        "⚠️ Jobs without progress for over {minutes} {minutes:minute|minutes}: {count} ({jobs}). "
        "See /queue.",
    ),
    # result captions and buttons
    "caption_seed": Text("种子 {seed}", "seed {seed}"),
    "caption_partial": Text(
        "{requested} 张中成功 {delivered} 张，仅按成功的计费",
        "{delivered} of {requested} images came out; only {delivered:that one was|those were} "
        "charged",
    ),
    "caption_remaining": Text(
        "本月剩余 {remaining} 张", "{remaining} {remaining:image|images} left this month"
    ),
    "caption_unlimited": Text("管理员不限额", "admin: unlimited"),
    "caption_album": Text("相册 {n} 张", "album of {n} {n:image|images}"),
    "btn_again": Text("🔁 换个种子再来", "🔁 Again, new seed"),
    "btn_again_qwen": Text("🔁 再来一次", "🔁 Again"),  # /edit's model has no seed
    "btn_upscale": Text("🔍 放大这张", "🔍 Upscale this"),
    "btn_upscale_n": Text("🔍 放大第 {index} 张", "🔍 Upscale #{index}"),
    # command names (captions, keyboards)
    "cmd_edit": Text("图像编辑", "Edit"),
    "cmd_style": Text("全局风格化", "Style transfer"),
    "cmd_localstyle": Text("局部风格化", "Local style"),
    "cmd_instruct": Text("指令编辑", "Instruction edit"),
    "cmd_erase": Text("局部重绘", "Masked repaint"),
    "cmd_dewatermark": Text("去水印", "Watermark removal"),
    "cmd_expand": Text("扩图", "Expand"),
    "cmd_upscale": Text("超分辨率放大", "Upscale"),
    "cmd_colorize": Text("黑白上色", "Colorize"),
    "cmd_sketch": Text("线稿生图", "Sketch to image"),
    "cmd_cartoon": Text("参考卡通生图", "Cartoon scene"),
    # requests and conversations
    "parse_problem": Text("{problem}\n例如：<code>{example}</code>", "{problem}\nFor example: <code>{example}</code>"),
    "unknown_command": Text(
        "我不认识命令 {command}。发送 /help 查看全部命令。",
        "I don't know the command {command}. Send /help to see them all.",
    ),
    "unknown_command_suggest": Text(
        "没有 /{command} 这个命令。你是不是想用 /{suggestion}？",
        "Unknown command /{command}. Did you mean /{suggestion}?",
    ),
    "need_image": Text(
        "请把 /{command} 写在图片的说明文字里发送，或者回复一张图片发送这条命令。",
        "Send /{command} as the caption of a photo, or reply to a photo with it.",
    ),
    # --- albums (handlers/albums.py) -------------------------------------------------------
    "album_no_command": Text(
        "要处理整个相册，请把命令写在相册的说明里，例如 /colorize；"
        "也可以逐张发送图片，我会问你要做什么。",
        "To edit a whole album, write the command in its caption, e.g. /colorize; or send the "
        "images one at a time and I will ask what to do with each.",
    ),
    "album_unsupported": Text(
        "这个请求不能用于相册（它需要进一步选择，或每张图片要生成多张结果）。请配单张图片发送。",
        "This request cannot run on an album (it needs a further choice, or several results "
        "per image): send it with a single image.",
    ),
    "album_too_many": Text(
        "一个相册最多处理 {max} 张图片：只处理前 {max} 张。",
        "An album is edited up to {max} {max:image|images}: only the first {max} are edited.",
    ),
    "private_hint": Text(
        "发给我一张图片，在说明里写上要做什么（例如“把天空变成晚霞”），或者用 /help 查看命令。",
        "Send me a photo with a caption saying what to do (e.g. \"make the sky a sunset\"), "
        "or see /help for the commands.",
    ),
    "file_too_big": Text(
        "文件太大：Telegram 只允许机器人下载 {limit_mb} MB 以内的文件。",
        "The file is too big: Telegram lets bots download files up to {limit_mb} MB.",
    ),
    "file_unavailable": Text(
        "无法从 Telegram 下载这个文件，请重新发送图片。",
        "The file could not be downloaded from Telegram. Please send the image again.",
    ),
    "erase_ask_mask": Text(
        "现在请发送蒙版图片（10 分钟内）：<b>白色</b> = 要修改的区域，<b>黑色</b> = 保持不变。"
        "蒙版的长宽比例要和原图一致，尺寸可以不同。可以在说明里写上提示词。发送 /cancel 取消。",
        "Now send the mask image (within 10 minutes): <b>white</b> = the area to change, "
        "<b>black</b> = keep, same shape as the photo (any size). You may put a prompt in its "
        "caption. "
        "Send /cancel to stop.",
    ),
    "erase_ask_mask_group": Text(
        "现在请<b>回复这条消息</b>发送蒙版图片（10 分钟内）：<b>白色</b> = 要修改的区域，"
        "<b>黑色</b> = 保持不变。只有发起请求的人发送的图片才会被当作蒙版。发送 /cancel 取消。",
        "Now <b>reply to this message</b> with the mask image (within 10 minutes): "
        "<b>white</b> = the area to change, <b>black</b> = keep. Only the requester's image "
        "counts as the mask. Send /cancel to stop.",
    ),
    "mask_question": Text(
        "这张图片看起来像照片，不像蒙版（蒙版只有黑白两色：白色 = 要修改的区域，黑色 = 保持不变）。"
        "要把它当作蒙版，还是这是一张新照片？",
        "This looks like a photo, not a mask (a mask is black and white: white = the area to "
        "change, black = keep). Use it as the mask anyway, or is it a new photo?",
    ),
    "btn_mask_use": Text("当作蒙版", "Use as mask"),
    "btn_mask_new": Text("这是新照片", "It's a new photo"),
    "mask_wait_ended": Text(
        "不再等待 /{command} 的蒙版。",
        "No longer waiting for the mask for /{command}.",
    ),
    "mask_still_waiting": Text(
        "还在等待 /{command} 的蒙版：请发送蒙版图片，或发送 /cancel 取消。",
        "Still waiting for the mask for /{command}: send the mask image, or /cancel to stop.",
    ),
    "mask_retry": Text("请再发送一张蒙版，或发送 /cancel 取消。", "Send another mask, or /cancel."),
    "pick_style": Text("选择一种局部风格：", "Pick a local style:"),
    "pick_action": Text(
        "要对这张图片做什么？\n需要描述的编辑请在图片说明里写命令，例如 <code>/style 转换成法国绘本风格</code>。",
        "What shall I do with this photo?\nFor edits that need a description, put a command "
        "in the caption, e.g. <code>/style turn it into a French picture book</code>.",
    ),
    "picked": Text("已选择：{choice}", "Chosen: {choice}"),
    "picked_style": Text("{command}：{style}", "{command}: {style}"),
    "button_expired": Text("这个按钮已失效。", "This button has expired."),
    "not_your_button": Text("这个按钮属于别人的请求。", "This button belongs to someone else's request."),
    "button_started": Text("好的，开始处理。", "On it."),
    # a second press of "Again" or "Upscale" while the first one's image is still being made
    "button_already_running": Text(
        "已经在处理中：上一次点击的图片还在制作，完成后会发给你。",
        "Already running: the image from your last press is still being made and will reach "
        "you when done.",
    ),
    "cancelled": Text("已取消，不再等待蒙版。", "Cancelled: no longer waiting for a mask."),
    "nothing_to_cancel": Text("没有需要取消的操作。", "There is nothing to cancel."),
    "cancelled_command": Text(
        "已取消，不再等待 /{command} 的图片。",
        "Cancelled: /{command} no longer waits for a photo.",
    ),
    "cancelled_job": Text(
        "✖ 已取消：这个请求没有发送给图像服务，未扣除额度。",
        "✖ Cancelled: the request never reached the image service. Nothing was charged.",
    ),
    "cancel_too_late": Text(
        "这张图片已经在制作中，无法撤回；完成后会发给你。",
        "That image is already being made and cannot be recalled; it will reach you when done.",
    ),
    "btn_cancel_job": Text("✖ 取消", "✖ Cancel"),
    "send_photo_now": Text(
        "好的，/{command}：现在把图片发给我（10 分钟内有效，/cancel 取消）。",
        "OK, /{command}: now send me the photo (within 10 minutes; /cancel to drop it).",
    ),
    # quota and language
    "quota_status": Text(
        "本月已用 {used} 张，处理中 {reserved} 张，剩余 <b>{remaining}</b> 张"
        "（每月 {limit} 张，额外赠送 {granted} 张）。\n额度于 {reset}（{tz}）重置。",
        "This month: {used} {used:image|images} used, {reserved} in progress, "
        "<b>{remaining}</b> left (limit {limit}, {granted} extra granted).\n"
        "Resets on {reset} ({tz}).",
    ),
    "quota_admin": Text("你是管理员，不受额度限制。", "You are an admin: no quota applies."),
    "lang_set": Text("好的，我会用中文和你交流。", "OK, I'll talk to you in English."),
    "lang_usage": Text(
        "用法：/lang zh（中文）、/lang en（English）或 /lang auto（跟随 Telegram 设置）。",
        "Usage: /lang zh (中文), /lang en (English) or /lang auto (follow Telegram).",
    ),
    # /id
    "id_private": Text(
        "你的用户 ID：<code>{user_id}</code>（这个私聊的 ID 与它相同）。\n"
        "运营者把它填入 ADMIN_USER_IDS（管理员）或 ALLOWED_USER_IDS（允许使用机器人的用户）。",
        "Your user id: <code>{user_id}</code> (this private chat has the same id).\n"
        "Operators put it in ADMIN_USER_IDS (admins) or ALLOWED_USER_IDS (who may use the bot).",
    ),
    "id_group": Text(
        "你的用户 ID：<code>{user_id}</code>\n本群的 ID：<code>{chat_id}</code>\n"
        "运营者把用户 ID 填入 ADMIN_USER_IDS 或 ALLOWED_USER_IDS，"
        "把群 ID 填入 ALLOWED_CHAT_IDS（允许使用机器人的群）。",
        "Your user id: <code>{user_id}</code>\nThis chat's id: <code>{chat_id}</code>\n"
        "Operators put user ids in ADMIN_USER_IDS or ALLOWED_USER_IDS, and chat ids in "
        "ALLOWED_CHAT_IDS (the groups where the bot may be used).",
    ),
    # admin
    "admin_only": Text("只有管理员可以使用这个命令。", "Only admins can use this command."),
    "admin_need_user": Text(
        "请指定用户：数字 ID、@用户名，或回复该用户的消息。",
        "Name the user: a numeric id, an @username, or reply to their message.",
    ),
    "admin_unknown_user": Text(
        "找不到用户 {user}：对方需要先和机器人说过话。",
        "Unknown user {user}: they must have used the bot once.",
    ),
    "admin_bad_user_id": Text(
        "{user} 不是 Telegram 用户 ID：用户 ID 是正整数（发送 /id 可查看自己的）。",
        "{user} is not a Telegram user id: user ids are positive numbers (/id shows yours).",
    ),
    "admin_usage_setquota": Text(
        "用法：/setquota &lt;用户&gt; &lt;张数|default&gt;", "Usage: /setquota &lt;user&gt; &lt;n|default&gt;",
    ),
    "admin_usage_grant": Text(
        "用法：/grant &lt;用户&gt; &lt;张数&gt;（负数表示收回）",
        "Usage: /grant &lt;user&gt; &lt;n&gt; (negative takes back)",
    ),
    "admin_usage_usage": Text("用法：/usage [YYYY-MM]", "Usage: /usage [YYYY-MM]"),
    "admin_quota_set": Text(
        "{user} 的月额度现为 {limit} 张，本月剩余 {remaining} 张。",
        "{user} now has a monthly limit of {limit} {limit:image|images}; {remaining} left "
        "this month.",
    ),
    "admin_granted": Text(
        "已为 {user} 本月增加 {images} 张（本月共赠送 {granted} 张），剩余 {remaining} 张。",
        "Granted {user} {images} {images:image|images} this month ({granted} extra in total); "
        "{remaining} left.",
    ),
    "admin_banned": Text("已禁止 {user} 使用机器人。", "{user} is banned."),
    "admin_unbanned": Text("已解除 {user} 的禁用。", "{user} is no longer banned."),
    "admin_cannot_ban_admin": Text("不能禁用管理员。", "Admins cannot be banned."),
    "usage_header": Text(
        "<b>{month}</b> 用量：{images} 张，估算费用 ¥{cost}",
        "<b>{month}</b> usage: {images} {images:image|images}, estimated cost ¥{cost}",
    ),
    "usage_free": Text("{model} 免费额度：{used}/{allowance}", "{model} free allowance: {used}/{allowance}"),
    "usage_top": Text("用量最多的用户：", "Top users:"),
    "usage_budget": Text(
        "估算花费（已送达加处理中，按标价，未扣免费额度）：¥{spent}，月预算 ¥{budget}（{percent}%）",
        "Estimated spend (delivered plus in progress, list price, free allowance not "
        "deducted): ¥{spent} of the ¥{budget} monthly budget ({percent}%)",
    ),
    "usage_no_budget": Text(
        "估算花费（已送达加处理中，按标价）：¥{spent}；未设置月预算（MONTHLY_BUDGET_YUAN）。",
        "Estimated spend (delivered plus in progress, list price): ¥{spent}; no monthly "
        "budget is set (MONTHLY_BUDGET_YUAN).",
    ),
    "queue_header": Text(
        "排队中 {queued} 个，处理中 {active} 个。", "{queued} queued, {active} running.",
    ),
    # command menu
    "menu_edit": Text("通义千问图像编辑：按描述修改图片", "Edit a photo as described (Qwen)"),
    "menu_style": Text("全局风格化", "Restyle the whole photo"),
    "menu_localstyle": Text("局部风格化（8 种风格）", "Local style (8 styles)"),
    "menu_instruct": Text("指令编辑：添加或修改内容", "Add or change things by instruction"),
    "menu_erase": Text("局部重绘：用蒙版指定区域", "Repaint an area given by a mask"),
    "menu_dewatermark": Text("去除文字和水印", "Remove text and watermarks"),
    "menu_expand": Text("扩图", "Expand the canvas"),
    "menu_upscale": Text("超分辨率放大", "Upscale (super resolution)"),
    "menu_colorize": Text("黑白照片上色", "Colorize a black-and-white photo"),
    "menu_sketch": Text("线稿生图", "Turn a sketch into a picture"),
    "menu_cartoon": Text("参考卡通形象生图", "New scene for a cartoon character"),
    "menu_quota": Text("查看本月额度", "Your quota this month"),
    "menu_lang": Text("切换语言 zh/en", "Switch language zh/en"),
    "menu_cancel": Text("取消等待蒙版", "Stop waiting for a mask"),
    "menu_help": Text("使用说明", "How to use the bot"),
    "menu_id": Text("查看你的用户 ID 和本聊天的 ID", "Your user id and this chat's id"),
    # admin command menu (only in the admins' own chats)
    "menu_setquota": Text("管理：设置用户的月额度", "Admin: set a user's monthly limit"),
    "menu_grant": Text("管理：本月额外赠送张数", "Admin: grant extra images this month"),
    "menu_ban": Text("管理：禁止用户使用机器人", "Admin: ban a user"),
    "menu_unban": Text("管理：解除禁用", "Admin: unban a user"),
    "menu_usage": Text("管理：用量与估算费用", "Admin: usage and estimated cost"),
    "menu_queue": Text("管理：排队中和处理中的任务", "Admin: queued and running jobs"),
    "start": Text(
        "你好！我用阿里云百炼模型编辑照片：换背景、改风格、去水印、放大、上色等。\n"
        "例如发送一张照片，说明写 <code>/edit 把天空换成晚霞</code>。\n"
        "现在就发一张照片给我吧。全部命令见 /help。",
        "Hello! I edit photos with Alibaba Cloud Bailian models: new backgrounds, styles, "
        "watermark removal, upscaling, colour.\n"
        "For example, send a photo captioned <code>/edit make the sky a sunset</code>.\n"
        "Send me a photo to begin. All the commands: /help.",
    ),
    "help": Text(
        "我用阿里云百炼模型编辑你的照片。\n"
        "<b>用法</b>：发送图片并在说明里写命令，或回复一张图片发送命令。私聊时直接发图并写描述即等于 /edit。\n\n"
        "<code>/edit 把天空换成晚霞 neg=\"模糊, 变形\"</code> 通义千问编辑（neg= 反向提示词）\n"
        "<code>/style 转换成法国绘本风格 strength=0.6</code> 全局风格化\n"
        "<code>/localstyle 冰雕 把房子变成冰雕</code> 局部风格化：冰雕、云朵、花灯、木板、青花瓷、毛茸茸、毛线、气球\n"
        "<code>/instruct 给小狗戴上帽子 strength=0.5</code> 指令编辑\n"
        "<code>/erase 一个玻璃花瓶</code> 局部重绘：随后发送蒙版（白色=修改，黑色=保留），提示词可留空表示删除\n"
        "<code>/dewatermark</code> 去水印\n"
        "<code>/expand 1.5</code>、<code>/expand left=1.5 right=1.5</code>、<code>/expand ratio=16:9</code> 扩图\n"
        "<code>/upscale 4</code> 放大 1–4 倍\n"
        "<code>/colorize 温暖复古色调</code> 黑白上色\n"
        "<code>/sketch 一座雪山下的木屋 sketch=yes</code> 线稿生图\n"
        "<code>/cartoon 卡通形象小心翼翼地探出头</code> 参考卡通生图\n\n"
        "通用选项：<code>n=1..4</code> 生成张数，<code>seed=数字</code> 固定随机种子。\n"
        "<b>群组</b>：回复一张图片发送 <code>/upscale@{bot}</code>。机器人开启隐私模式时只能看到命令和回复它的消息，"
        "所以蒙版请回复机器人的提示消息发送。\n"
        "<b>额度</b>：/quota 查看；只对成功送达的图片计费。/lang 切换语言；/cancel 取消等待中的蒙版、"
        "图片或排队的请求；/id 查看你的数字 ID。",
        "I edit your photos with Alibaba Cloud Bailian models.\n"
        "<b>How</b>: send a photo with a command as its caption, or reply to a photo with a "
        "command. In a private chat, a photo with any caption is an /edit.\n\n"
        "<code>/edit make the sky a sunset neg=\"blurry, distorted\"</code> Qwen edit "
        "(neg= negative prompt)\n"
        "<code>/style turn into a French picture book strength=0.6</code> restyle everything\n"
        "<code>/localstyle ice turn the house into ice</code> local style: ice, cloud, "
        "lantern, wooden, porcelain, fluffy, weaving, balloon\n"
        "<code>/instruct put a hat on the dog strength=0.5</code> edit by instruction\n"
        "<code>/erase a glass vase</code> repaint a masked area: then send the mask (white = "
        "change, black = keep); no prompt = remove\n"
        "<code>/dewatermark</code> remove text and watermarks\n"
        "<code>/expand 1.5</code>, <code>/expand left=1.5 right=1.5</code>, "
        "<code>/expand ratio=16:9</code> expand the canvas\n"
        "<code>/upscale 4</code> upscale 1–4×\n"
        "<code>/colorize warm vintage tones</code> colorize\n"
        "<code>/sketch a cabin under a snowy mountain sketch=yes</code> sketch to picture\n"
        "<code>/cartoon the character peeks out carefully</code> cartoon scene\n\n"
        "Common options: <code>n=1..4</code> images, <code>seed=number</code> for a fixed seed.\n"
        "<b>Groups</b>: reply to a photo with <code>/upscale@{bot}</code>. With privacy mode on "
        "the bot only sees commands and replies to it, so send masks as a reply to its prompt.\n"
        "<b>Quota</b>: see /quota; only delivered images are charged. /lang switches language, "
        "/cancel stops a wait for a mask or a photo, or a queued request; /id shows your "
        "numeric id.",
    ),
}


class _Formatter(string.Formatter):
    """``str.format`` plus plural forms: ``{n:image|images}``."""

    def format_field(self, value: object, format_spec: str) -> str:
        if "|" in format_spec:
            one, many = format_spec.split("|", 1)
            return one if str(value).strip() in ("1", "-1") else many
        return str(super().format_field(value, format_spec))


_FORMATTER = _Formatter()


def text(key: str, lang: Lang | str, /, **params: object) -> str:
    """Render catalogue entry ``key`` in ``lang``."""
    entry = CATALOGUE[key]
    template = entry.zh if Lang(lang) is Lang.ZH else entry.en
    return _FORMATTER.format(template, **params) if params else template


def render_error(error: BotError, lang: Lang | str) -> str:
    """Any error of ours in words for the user: its catalogue text, then a working example in
    the same language when the error names one.

    Every parameter is escaped: they can carry what the user typed or what a service said.
    """
    params = {name: html.escape(str(value)) for name, value in error.text_params().items()}
    problem = text(error.key, lang, **params)
    if not error.example_key:
        return problem
    return text("parse_problem", lang, problem=problem, example=text(error.example_key, lang))
