"""Widgets several pages share: page headers, job cards, small common controls."""
