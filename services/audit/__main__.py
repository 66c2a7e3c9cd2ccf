from services.audit.app import app, runtime

runtime.serve(app)
