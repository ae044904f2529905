"""The presenter theme: strong contrast for projectors, no dim greys.

A projector washes out dark greys and thin colours, so everything the screens
draw as "muted" is a light grey here, the background is near black, and the
accents are saturated and bright. Registered and selected by the demo app.
"""

from __future__ import annotations

from textual.theme import Theme

#: Near-white for text the normal themes dim (60 % foreground): still secondary, still readable.
_READABLE_GREY = "#d4d8e0"

PRESENTER = Theme(
    name="presenter",
    primary="#4fc3f7",
    secondary="#b39dff",
    accent="#ffd54f",
    warning="#ffb74d",
    error="#ff6e7a",
    success="#69f0ae",
    foreground="#ffffff",
    background="#05070c",
    surface="#10141c",
    panel="#1b2230",
    dark=True,
    variables={
        "text": "auto 95%",
        "text-muted": _READABLE_GREY,
        "text-disabled": "#aab0bc",
        "foreground-muted": _READABLE_GREY,
        "foreground-disabled": "#aab0bc",
        "accent-muted": "#54481a",
        "border-blurred": "#5c6b80",
        "block-cursor-foreground": "#05070c",
        "block-cursor-background": "#4fc3f7",
        "block-cursor-blurred-foreground": "#ffffff",
        "block-cursor-blurred-background": "#2c4a66",
        "footer-key-foreground": "#ffd54f",
        "footer-description-foreground": "#ffffff",
        "footer-background": "#1b2230",
    },
)
