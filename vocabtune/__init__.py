"""vocabtune: teach Whisper a person's own vocabulary.

Pipeline (data flows one way): recordings -> captions -> chunks -> dataset ->
training -> scoring -> merged model -> Hub.  Each stage is one module, named for it.
"""

__version__ = "0.1.0"
