"""Charts of the hub's pages (plan, review): matplotlib off-screen, Chinese glyphs for zh, PNG bytes out.

Both pages draw with the same setup, so the font and the PNG encoding live here once.
"""

from __future__ import annotations

import io
from pathlib import Path

CJK_FONT = "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"   # Debian's fonts-wqy-microhei (.ci/setup)


def pyplot(lang: str):
    """matplotlib.pyplot on the Agg backend, with the CJK font when drawing in Chinese and it is installed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib import font_manager

    if lang == "zh" and Path(CJK_FONT).exists():
        font_manager.fontManager.addfont(CJK_FONT)
        plt.rcParams["font.family"] = font_manager.FontProperties(fname=CJK_FONT).get_name()
    return plt


def png_bytes(fig, dpi: int = 90) -> bytes:
    """The figure as PNG, then closed (a long-running hub draws many)."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    plt.close(fig)
    return buf.getvalue()
