"""The grammar family: languages, alphabet, data, metaexample designs, evaluation."""
