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
    "cmd_error_bad_box": Text(
        zh="{option}= 需要 0 到 100 之间的四个数：左,上,右,下（按宽和高的百分比），且左 &lt; 右、上 &lt; 下；收到的是 “{value}”。",
        en="{option}= takes four numbers from 0 to 100: left,top,right,bottom in percent of the "
        "width and height, with left &lt; right and top &lt; bottom; got “{value}”.",
    ),
    "cmd_error_too_many_boxes": Text(
        zh="最多 {limit} 个 box=，收到 {count} 个。区域更复杂时，请在照片上用画笔涂抹。",
        en="At most {limit} box= are allowed, got {count}. For a more complex area, paint it "
        "over the photo with the brush instead.",
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
    "example_erase_box": Text(
        zh="/erase box=10,20,60,80 一个玻璃花瓶", en="/erase box=10,20,60,80 a glass vase"
    ),
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
        zh="<code>/erase [描述]</code>：重绘指定区域（在照片上涂抹、用 box= 框出，或发送蒙版）；留空即删除该处的小物件，"
        "删除大物件时请描述擦除后的画面。选项 box=左,上,右,下（百分比，可写多个）、n=、seed=",
        en="<code>/erase [description]</code>: repaint an area (painted over the photo, given "
        "with box=, or a mask's white); leave it empty to "
        "remove a small thing there, or describe what should be there instead. Options "
        "box=left,top,right,bottom (percent; several allowed), n=, seed=",
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
    # --- masks painted on the photo (bot/masks.py, #13) ------------------------------------------
    "painted_unchanged": Text(
        zh="这张图片和原图一样，看不到涂抹的笔画。请在 Telegram 的照片编辑器里用画笔涂出要修改的"
        "区域，再把涂好的图片发给我。",
        en="This is the same photo with no strokes I can see. Paint over the area to change with "
        "the brush in Telegram's photo editor, then send me the painted photo.",
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
    "quota_exceeded_buy": Text(
        "额度不足：需要 {requested} 张，剩余 {remaining} 张（每月 {limit} 张，于 {reset} 重置）。"
        "可以用 /buy 购买图片包，购买的图片不会过期。用 /quota 查看详情。",
        "Not enough images: {requested} {requested:image|images} needed, {remaining} left (of "
        "{limit} a month, resetting on {reset}). Buy a pack with /buy; bought images never "
        "expire. See /quota.",
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
    "caption_remaining_purchased": Text(
        "剩余 {remaining} 张（含购买的）", "{remaining} {remaining:image|images} left, bought ones included"
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
        "现在告诉我要改哪里（10 分钟内）：\n"
        "🖌 <b>最简单</b>：把这张照片再发给我，发送前用 Telegram 图片编辑里的<b>画笔</b>涂抹要修改的地方。"
        "我会先给你看要重绘的区域，确认后才开始、才扣额度。\n"
        "或者发送黑白蒙版图片：<b>白色</b> = 要修改，<b>黑色</b> = 保持不变，长宽比例与原图一致。\n"
        "下次也可以直接框出区域：<code>/erase box=10,20,60,80 一个玻璃花瓶</code>（左,上,右,下，按宽高的百分比）。\n"
        "发送 /cancel 取消。",
        "Now show me what to change (within 10 minutes):\n"
        "🖌 <b>Easiest</b>: send this photo back to me with the area painted over using the "
        "<b>brush</b> of Telegram's photo editor (tap the photo before sending). I show you what "
        "will be repainted first; nothing runs or is charged until you confirm.\n"
        "Or send a black-and-white mask: <b>white</b> = change, <b>black</b> = keep, the shape of "
        "the photo.\n"
        "Next time you can name the area at once: "
        "<code>/erase box=10,20,60,80 a glass vase</code> (left,top,right,bottom in percent of "
        "the width and height).\n"
        "Send /cancel to stop.",
    ),
    "erase_ask_mask_group": Text(
        "现在请<b>回复这条消息</b>，告诉我要改哪里（10 分钟内）：\n"
        "🖌 <b>最简单</b>：回复时附上这张照片，发送前用 Telegram 图片编辑里的<b>画笔</b>涂抹要修改的地方；"
        "确认后才开始、才扣额度。\n"
        "或者附上黑白蒙版图片：<b>白色</b> = 要修改，<b>黑色</b> = 保持不变。\n"
        "也可以直接框出区域：<code>/erase box=10,20,60,80 一个玻璃花瓶</code>。\n"
        "只有发起请求的人发送的图片才算数。发送 /cancel 取消。",
        "Now <b>reply to this message</b> to show me what to change (within 10 minutes):\n"
        "🖌 <b>Easiest</b>: reply with this photo, painted over with the <b>brush</b> of "
        "Telegram's photo editor where it should change; nothing runs or is charged until you "
        "confirm.\n"
        "Or reply with a black-and-white mask: <b>white</b> = change, <b>black</b> = keep.\n"
        "Or name the area at once: <code>/erase box=10,20,60,80 a glass vase</code>.\n"
        "Only the requester's image counts. Send /cancel to stop.",
    ),
    "mask_preview": Text(
        "红色区域（约占画面 {percent}%）将被重绘。确认后才开始并扣除额度。",
        "The red area (about {percent}% of the picture) will be repainted. Nothing runs or is "
        "charged until you press Run.",
    ),
    "btn_mask_run": Text("▶️ 开始", "▶️ Run"),
    "btn_mask_redo": Text("↩️ 重画", "↩️ Redo"),
    "btn_mask_cancel": Text("✖ 取消", "✖ Cancel"),
    "btn_draw_mask": Text("🖌 画出蒙版", "🖌 Draw the mask"),
    "mask_redo": Text(
        "好的，请重新涂抹照片后发给我（或发送蒙版图片）。发送 /cancel 取消。",
        "OK: paint over the photo again and send it (or send a mask image). Send /cancel to stop.",
    ),
    "mask_preview_gone": Text(
        "这个预览已失效：请求已开始、已取消或已有更新的预览。",
        "This preview is no longer current: the request ran, was cancelled, or has a newer "
        "preview.",
    ),
    "miniapp_wait_gone": Text(
        "这幅画对应的 /erase 请求已结束（已开始、已取消或已过期）。请带着照片重新发送 /erase。",
        "The /erase request this drawing was for has ended (it ran, was cancelled or expired). "
        "Send /erase with the photo again.",
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
        "还在等待 /{command} 的蒙版：请发送用画笔涂抹过的照片或蒙版图片，或发送 /cancel 取消。",
        "Still waiting for the mask for /{command}: send the photo painted over with the brush, "
        "or a mask image, or /cancel to stop.",
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
    # --- images bought with Telegram Stars (bot/payments.py, handlers/payments.py) -------------
    "stars_off": Text(
        "目前不出售额外的张数。", "Images are not for sale at the moment.",
    ),
    "stars_choose": Text(
        "选择要购买的张数，用 Telegram Stars 付款。购买的张数不会过期，本月额度用完后才会使用。",
        "Choose a pack, paid in Telegram Stars. Purchased images never expire and are used "
        "once this month's quota is spent.",
    ),
    "stars_pack_button": Text(
        "{images} 张 · {stars} ⭐", "{images} {images:image|images} · {stars} ⭐",
    ),
    # Invoice title: at most 32 characters; description: at most 255. Plain text, no HTML.
    "stars_invoice_title": Text(
        "{images} 张图片", "{images} {images:image|images}",
    ),
    "stars_invoice_description": Text(
        "为你的账号增加 {images} 张图片，不会过期；本月额度用完后使用。",
        "{images} more {images:image|images} for your account. They never expire and are "
        "used after your monthly quota.",
    ),
    "stars_pack_gone": Text(
        "这个套餐已不再出售，请重新发送 /buy 查看当前的套餐。",
        "That pack is no longer offered; send /buy to see the current ones.",
    ),
    # Pre-checkout refusals: shown by Telegram in the payment form, plain text.
    "stars_refused_off": Text(
        "目前不出售额外的张数，没有扣款。",
        "Images are not for sale at the moment; you were not charged.",
    ),
    "stars_refused_pack": Text(
        "这个套餐或它的价格已经变化，没有扣款。请发送 /buy 重新选择。",
        "That pack or its price has changed; you were not charged. Send /buy to choose again.",
    ),
    "stars_refused_payer": Text(
        "这张账单是为另一位用户开的，没有扣款。请自己发送 /buy。",
        "This invoice was made for someone else; you were not charged. Send /buy yourself.",
    ),
    "stars_refused_access": Text(
        "你不在允许使用本机器人的名单中，没有扣款。",
        "You are not on this bot's allow-list; you were not charged.",
    ),
    "stars_refused_banned": Text(
        "你已被禁止使用本机器人，没有扣款。",
        "You are banned from this bot; you were not charged.",
    ),
    "stars_paid": Text(
        "✅ 付款成功，已增加 {images} 张。你现在有 <b>{purchased}</b> 张购买的图片（不会过期），"
        "加上本月额度共剩余 {remaining} 张。",
        "✅ Payment received: {images} {images:image|images} added. You now have "
        "<b>{purchased}</b> purchased {purchased:image|images} (they never expire); "
        "{remaining} left in all, with this month's quota.",
    ),
    "stars_paid_before": Text(
        "这笔付款之前已经入账，没有重复增加。你现在有 <b>{purchased}</b> 张购买的图片。",
        "This payment was credited before; nothing was added twice. You have "
        "<b>{purchased}</b> purchased {purchased:image|images}.",
    ),
    "stars_payment_unknown": Text(
        "收到一笔无法对应到套餐的付款，已经记录。请通过 /paysupport 联系我们，"
        "并附上付款 ID：<code>{charge}</code>",
        "A payment arrived that I cannot match to a pack; it was logged. Please contact us "
        "through /paysupport with the payment id: <code>{charge}</code>",
    ),
    "stars_paysupport": Text(
        "付款遇到问题？请联系本机器人的运营者，并附上付款 ID"
        "（在付款确认消息或 Telegram 的交易记录中）。退款以 Telegram Stars 退回。",
        "A problem with a payment? Contact the operator of this bot with the payment id (in "
        "the confirmation or in Telegram's transaction history). Refunds are paid back in "
        "Telegram Stars.",
    ),
    "stars_terms": Text(
        "购买条款：购买的张数只用于本机器人的图片编辑，不会过期，本月额度用完后才会使用。"
        "只有成功送达的图片才计数，失败的请求会退回张数。付款以 Telegram Stars 进行；"
        "退款由运营者处理，见 /paysupport。",
        "Terms: purchased images are for editing photos with this bot. They never expire and "
        "are used once this month's quota is spent. Only delivered images count; a failed "
        "request gives its images back. Payment is in Telegram Stars; refunds are handled by "
        "the operator, see /paysupport.",
    ),
    "quota_purchased": Text(
        "购买的图片：<b>{purchased}</b> 张（不会过期，本月额度用完后使用；/buy 购买更多）。",
        "Purchased images: <b>{purchased}</b> (they never expire and are used after the "
        "monthly quota; /buy for more).",
    ),
    "admin_usage_refund": Text(
        "用法：/refund &lt;用户&gt; &lt;付款 ID&gt;（付款 ID 即 telegram_payment_charge_id）",
        "Usage: /refund &lt;user&gt; &lt;telegram_payment_charge_id&gt;",
    ),
    "admin_refund_unknown": Text(
        "账本中没有 {user} 的付款 <code>{charge}</code>。",
        "No payment <code>{charge}</code> by {user} in the ledger.",
    ),
    "admin_refund_again": Text(
        "付款 <code>{charge}</code> 已于 {when} 退款，不会重复退款。",
        "Payment <code>{charge}</code> was refunded on {when}; it is not refunded twice.",
    ),
    "admin_refund_failed": Text(
        "Telegram 拒绝退还付款 <code>{charge}</code>：{reason}。账本没有改变。",
        "Telegram refused to refund payment <code>{charge}</code>: {reason}. The ledger is "
        "unchanged.",
    ),
    "admin_refunded": Text(
        "已向 {user} 退还 {stars} ⭐（付款 <code>{charge}</code>）。收回未使用的 {removed} 张"
        "（套餐共 {images} 张），对方现有购买的图片 {purchased} 张。",
        "Refunded {stars} ⭐ to {user} (payment <code>{charge}</code>). Took back {removed} "
        "unused {removed:image|images} of the pack's {images}; they now have {purchased} "
        "purchased {purchased:image|images}.",
    ),
    "admin_refund_synced": Text(
        "Telegram 表示付款 <code>{charge}</code> 已经退过款，账本现已标记为退款。"
        "收回未使用的 {removed} 张，{user} 现有购买的图片 {purchased} 张。",
        "Telegram says payment <code>{charge}</code> was refunded already; the ledger now "
        "says so too. Took back {removed} unused {removed:image|images}; {user} now has "
        "{purchased} purchased {purchased:image|images}.",
    ),
    "usage_stars": Text(
        "Telegram Stars：本月收入 {paid_month} ⭐（{payments_month} 笔），退款 {refunded_month} ⭐"
        "（{refunds_month} 笔）；累计收入 {paid_total} ⭐（{payments_total} 笔），"
        "退款 {refunded_total} ⭐（{refunds_total} 笔）。",
        "Telegram Stars: {paid_month} ⭐ this month ({payments_month} "
        "{payments_month:payment|payments}), {refunded_month} ⭐ refunded ({refunds_month}); "
        "all time {paid_total} ⭐ ({payments_total}), {refunded_total} ⭐ refunded "
        "({refunds_total}).",
    ),
    "menu_buy": Text("用 Telegram Stars 购买更多张数", "Buy more images with Telegram Stars"),
    "menu_paysupport": Text("付款帮助", "Help with a payment"),
    "menu_terms": Text("购买条款", "Terms of purchase"),
    "menu_refund": Text("管理：退还 Stars 付款", "Admin: refund a Stars payment"),
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
        "<code>/erase 一个玻璃花瓶</code> 局部重绘：随后发回用画笔涂抹过的照片，或发送蒙版（白色=修改）；"
        "或直接 <code>/erase box=10,20,60,80 一个玻璃花瓶</code>；提示词可留空表示删除\n"
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
        "图片或排队的请求；/id 查看你的数字 ID。\n"
        "<b>购买</b>：/buy 用 Telegram Stars 购买更多张数（不会过期）；/paysupport 付款帮助；"
        "/terms 购买条款。",
        "I edit your photos with Alibaba Cloud Bailian models.\n"
        "<b>How</b>: send a photo with a command as its caption, or reply to a photo with a "
        "command. In a private chat, a photo with any caption is an /edit.\n\n"
        "<code>/edit make the sky a sunset neg=\"blurry, distorted\"</code> Qwen edit "
        "(neg= negative prompt)\n"
        "<code>/style turn into a French picture book strength=0.6</code> restyle everything\n"
        "<code>/localstyle ice turn the house into ice</code> local style: ice, cloud, "
        "lantern, wooden, porcelain, fluffy, weaving, balloon\n"
        "<code>/instruct put a hat on the dog strength=0.5</code> edit by instruction\n"
        "<code>/erase a glass vase</code> repaint an area: then send the photo back painted "
        "over with the brush, or a mask (white = change), or name it at once with "
        "<code>box=10,20,60,80</code> (percent); no prompt = remove\n"
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
        "numeric id.\n"
        "<b>Buying</b>: /buy more images with Telegram Stars (they never expire); /paysupport "
        "for help with a payment; /terms for the terms of purchase.",
    ),
    # --- the Mini App for drawing an /erase mask (bot/web; btn_draw_mask and
    # miniapp_wait_gone are with the /erase texts above) --------------------------------------
    "miniapp_title": Text("涂出要重绘的区域", "Paint the area to repaint"),
    "miniapp_hint": Text(
        "用手指或鼠标涂抹要修改的地方，然后点击下方的按钮。",
        "Paint over what should change with a finger or the mouse, then press the button below.",
    ),
    "miniapp_brush": Text("画笔", "Brush"),
    "miniapp_size": Text("粗细", "Size"),
    "miniapp_eraser": Text("橡皮", "Eraser"),
    "miniapp_undo": Text("撤销", "Undo"),
    "miniapp_clear": Text("清除", "Clear"),
    "miniapp_submit": Text("重绘这个区域", "Repaint this area"),
    "miniapp_sending": Text("正在发送蒙版…", "Sending the mask…"),
    "miniapp_loading": Text("正在加载照片…", "Loading the photo…"),
    "miniapp_open_in_telegram": Text(
        "请在 Telegram 里打开这个页面：点击机器人消息下的“🖌 画出蒙版”按钮。",
        "Open this page from Telegram: press \"🖌 Draw the mask\" under the bot's message.",
    ),
    "miniapp_link_invalid": Text(
        "这个链接无效或已过期。请在 Telegram 里重新发送带 /erase 的照片。",
        "This link is invalid or has expired. Send the photo with /erase again in Telegram.",
    ),
    "miniapp_auth_failed": Text(
        "无法确认你的 Telegram 身份：请关闭这个页面，再从机器人的消息里打开。",
        "Your Telegram identity could not be confirmed: close this page and open it again "
        "from the bot's message.",
    ),
    "miniapp_not_requester": Text(
        "这个页面属于别人的 /erase 请求，只有发起请求的人可以画蒙版。",
        "This page belongs to someone else's /erase request: only the requester can draw its "
        "mask.",
    ),
    "miniapp_mask_too_big": Text(
        "蒙版太大：最多 {limit_mb} MB。请缩小涂抹区域后再试。",
        "The mask is too big: at most {limit_mb} MB. Paint a smaller area and try again.",
    ),
    "miniapp_mask_bad": Text(
        "蒙版无法使用：需要一张 {width}×{height} 的 PNG 图片。请重新打开页面再试。",
        "The mask cannot be used: a {width}×{height} PNG was expected. Open the page again "
        "and retry.",
    ),
    "miniapp_network_error": Text(
        "无法连接机器人，请稍后再试。", "Could not reach the bot. Please try again.",
    ),
    # --- the playground's chat page (bot/playground, python -m bot playground) ----------------
    "playground_title": Text("百炼修图机器人 · 本地试玩", "Bailian bot playground"),
    "playground_note": Text(
        "离线运行：结果由本地的 DashScope 模拟器用简单滤镜生成，并不是 AI 修图。",
        "Offline: a local DashScope emulator makes these results with simple filters, not AI "
        "edits.",
    ),
    "playground_private": Text("私聊", "Private chat"),
    "playground_group": Text("群组", "Group"),
    "playground_group_title": Text("试玩群", "Playground group"),
    "playground_group_members": Text("你、朋友和机器人", "You, Friend and the bot"),
    "playground_you": Text("你", "You"),
    "playground_friend": Text("朋友", "Friend"),
    "playground_send_as": Text("发送者", "Send as"),
    "playground_placeholder": Text("输入消息，或图片的说明", "Message, or the image's caption"),
    "playground_send": Text("发送", "Send"),
    "playground_attach": Text("图片", "Image"),
    "playground_as_file": Text("作为文件发送", "Send as a file"),
    "playground_reply": Text("回复", "Reply"),
    "playground_replying_to": Text("回复给", "Replying to"),
    "playground_edited": Text("已编辑", "edited"),
    "playground_close": Text("关闭", "Close"),
    "playground_hint": Text(
        "发送 /start，或者选一张图片，写上 /upscale 2 再发送。",
        "Send /start, or pick an image, write /upscale 2 and send.",
    ),
    "playground_nothing_to_send": Text(
        "请先写一条消息或选一张图片。", "Write a message or pick an image first.",
    ),
    "playground_not_image": Text(
        "“{name}” 不是可以作为照片发送的图片；勾选“作为文件发送”即可原样发送。",
        "“{name}” is not an image that can be sent as a photo; tick “Send as a file” to send "
        "it as it is.",
    ),
    "playground_refused": Text(
        "本地 Bot API 拒绝了这条消息：{reason}", "The local Bot API refused it: {reason}",
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
