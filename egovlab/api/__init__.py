"""The lab's control plane: REST API, metrics, web view (`egovlab serve`)."""
