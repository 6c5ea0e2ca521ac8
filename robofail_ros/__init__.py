"""robofail_ros: find where a learned robot manipulation policy fails, and how likely each failure is."""
__version__ = "0.1.0"  # as package.xml and setup.py say (a test keeps them equal)
