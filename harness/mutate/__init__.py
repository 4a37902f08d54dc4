"""Guarantee mutation: break one promise at a time and check the features notice."""
