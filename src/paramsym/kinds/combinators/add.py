"""`add(A | B | ...)`: every branch on the same input, summed."""

from __future__ import annotations

from ...core.records import KerasSpec
from .. import identity_name
from .base import Merge


class Add(Merge):
    key = keyword = "add"
    torch_how = "add"

    def keras_merge(self) -> KerasSpec:
        return KerasSpec("Add")

    def import_text(self, branches: list[list[str]]) -> str:
        # a sum of two values is written as res: of the identity and a branch, res(SEQ)
        identity = identity_name()
        texts = self.branch_texts(branches)
        if len(texts) == 2 and identity in texts:
            return f"res({texts[0] if texts[1] == identity else texts[1]})"
        return f"res({' | '.join(texts)})" if len(texts) == 2 else f"add({' | '.join(texts)})"


ADD = Add()
COMBINATORS = (ADD,)
