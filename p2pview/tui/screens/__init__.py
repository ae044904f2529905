"""One module per screen; each main screen is a mode of the app."""
