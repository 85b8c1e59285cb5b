"""LightningDataModules: synthetic OCR (default), OCR folders, CIFAR-10, image folders."""
