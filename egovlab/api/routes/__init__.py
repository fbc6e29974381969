"""One router per resource of the API; `egovlab.api.app` includes them all."""
