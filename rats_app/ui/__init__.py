"""The Gradio interface: the only package that imports gradio."""
