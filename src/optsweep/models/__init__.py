"""Networks: CRNN for OCR, CIFAR-style classifiers."""
