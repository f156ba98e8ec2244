"""The tiny demo model's training code (ARCHITECTURE.md section 5)."""
