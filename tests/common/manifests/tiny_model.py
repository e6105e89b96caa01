"""A python-framework model for the manifests beside it: it echoes its input."""


def predict(inputs):
    return inputs


NOT_CALLABLE = 42
