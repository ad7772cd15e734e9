"""The rules of each section of the setting; :class:`~.toplevel.SettingsRules` combines them."""
