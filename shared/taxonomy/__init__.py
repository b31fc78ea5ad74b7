"""The LAVA taxonomy: vocabularies, drive/clip/frame records and their validation."""
