"""Source files -> speech records -> passages -> vectors -> index directory."""
