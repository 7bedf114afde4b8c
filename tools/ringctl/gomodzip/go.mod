module github.com/impulse/ring/tools/ringctl/gomodzip

go 1.26.0

require golang.org/x/mod v0.41.0
