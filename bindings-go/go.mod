module keystead.dev/keystead

go 1.24
