from services.advances.app import app, runtime

runtime.serve(app)
