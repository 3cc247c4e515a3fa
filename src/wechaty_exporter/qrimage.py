"""Login QR payload → PNG bytes, rendered here: the QR is a credential, never sent to a renderer."""

from __future__ import annotations

import io

import segno

# 10 px per module: a login URL is a version 3-4 symbol (29-33 modules), so with the quiet zone the
# image is ~370-410 px, which a phone camera reads off another screen or a chat preview.
DEFAULT_SCALE = 10
QUIET_ZONE = 4  # modules; ISO/IEC 18004 asks for 4


def qr_png(payload: str, *, scale: int = DEFAULT_SCALE, border: int = QUIET_ZONE) -> bytes:
    """Encode `payload` as a QR code (error correction M or better) and return the PNG bytes."""
    if not payload:
        raise ValueError("empty QR payload")
    code = segno.make_qr(payload, error="m", boost_error=True)
    out = io.BytesIO()
    code.save(out, kind="png", scale=scale, border=border)
    return out.getvalue()
