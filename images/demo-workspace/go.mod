module github.com/greenroom-dev/greenroom/images/demo-workspace

go 1.26.8

