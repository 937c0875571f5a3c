package tests

import (
	"testing"

	"github.com/shardwork/shardwork/tests/harness"
)

func TestMain(m *testing.M) { harness.Main(m) }
