package guest

import "github.com/shardwork/shardwork/plugins/abi"

// Invoke runs the registered plugin's entry point for op over one encoded
// input batch and returns the encoded output, exactly as the WebAssembly
// exports do. It lets a plugin's logic be tested natively, without a host.
// The returned bytes are valid until the next Invoke.
func Invoke(op abi.Op, input []byte) ([]byte, error) {
	copy(st.reserve(len(input)), input)
	out := st.call(op, len(input), 0)
	if out == nil {
		return nil, errorString(st.lastErr)
	}
	return out, nil
}

// Configure runs the plugin's init hook with config, as the init export does.
func Configure(config []byte) error {
	copy(st.reserve(len(config)), config)
	if !st.init(len(config)) {
		return errorString(st.lastErr)
	}
	return nil
}

// DescribeJSON returns the describe export's JSON.
func DescribeJSON() []byte { return describeJSON() }

type errorString []byte

func (e errorString) Error() string { return string(e) }
