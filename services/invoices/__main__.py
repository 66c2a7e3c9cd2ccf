from services.invoices.app import app, runtime

runtime.serve(app)
