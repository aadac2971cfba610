"""Offline jobs: batch features into Feast's offline store, training sets, (re)training."""
