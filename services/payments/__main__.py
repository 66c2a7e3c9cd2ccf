from services.payments.app import app, runtime

runtime.serve(app)
