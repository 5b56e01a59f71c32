raise RuntimeError("models module failed on purpose")
