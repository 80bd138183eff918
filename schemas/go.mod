module github.com/greenroom-dev/greenroom/schemas

go 1.26.8

