"""The features every botops bot ships with, one cog per module."""
