from . import programme
