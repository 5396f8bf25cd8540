"""Reference prices and free allowances of the models, for the monthly report and the spend cap.

Figures from the Bailian price list (shared/reference/bailian-image-api.md); the bill is the truth,
these only estimate it. Decimal so that sums of 0.3 and 0.14 come out exact. Keys are
``bot.bailian.models.Model`` values, spelled out so that the store does not import the API client
package (a test checks that they match).
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from types import MappingProxyType

from bot.errors import BudgetExceededError
from storage.models import next_month_start

PRICE_YUAN_PER_IMAGE: Mapping[str, Decimal] = MappingProxyType({
    "qwen-image-edit": Decimal("0.3"),
    "wanx2.1-imageedit": Decimal("0.14"),
})

FREE_IMAGES_PER_MONTH: Mapping[str, int] = MappingProxyType({
    "qwen-image-edit": 50,
    "wanx2.1-imageedit": 500,
})


def estimated_cost(model: str, images: int) -> Decimal:
    """Yuan for ``images`` of ``model`` at the reference price (0 for an unpriced model)."""
    return PRICE_YUAN_PER_IMAGE.get(model, Decimal(0)) * images


def check_budget(
    *, month: str, spent: Decimal, model: str, images: int, budget: Decimal | None
) -> None:
    """Raise BudgetExceededError when ``images`` more of ``model`` would take the month's
    estimated spend past ``budget`` (None: no cap).

    Conservative on purpose: list prices, the free allowance not subtracted, reservations
    counted as if delivered.
    """
    if budget is None:
        return
    cost = estimated_cost(model, images)
    if spent + cost > budget:
        raise BudgetExceededError(month=month, spent=spent, cost=cost, budget=budget,
                                  resets_on=next_month_start(month))
