"""The query policy: answer a question from the caller's documents, redacting in and out."""
