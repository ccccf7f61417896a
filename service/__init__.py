"""The HTTP API (FastAPI), its settings, auth and limits, the job contract and the result store.

Never imports torch: the API image stays slim. `service.app.create_app` builds the application.
"""
