"""Using a trained model: loading, prediction, transfer/editing, export."""
