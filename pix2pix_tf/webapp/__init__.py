"""The exported model as a static web app that runs it in the browser with LiteRT.js.

`runtime` gets the LiteRT.js runtime from the npm registry; the page and the writer of
the app live beside it. No module here loads TensorFlow when imported.
"""
