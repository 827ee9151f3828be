"""Network building blocks shared by the families (blocks only: no objectives, no sampling)."""
