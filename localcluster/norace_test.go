//go:build !race

package localcluster_test

const raceEnabled = false
