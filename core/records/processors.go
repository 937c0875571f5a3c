package records

import (
	"fmt"
	"strings"
)

// Processor names accepted by ByName.
const (
	NameString    = "string"
	NameJSON      = "json"
	NameJSONLines = "jsonlines"
	NameJSONList  = "jsonlist"
	NameMsgpack   = "msgpack"
	NameKPLJSON   = "kpl-json"
	NameKPLString = "kpl-string"
)

// StringProcessor is the seed's StringProcessor: UTF-8 strings, one per
// Kinesis record.
func StringProcessor() Processor {
	return Processor{Name: NameString, Serializer: StringSerializer{}, Aggregator: SimpleAggregator{}}
}

// JSONProcessor is the seed's JsonProcessor (its default): one JSON value
// per Kinesis record.
func JSONProcessor() Processor {
	return Processor{Name: NameJSON, Serializer: JSONSerializer{}, Aggregator: SimpleAggregator{}}
}

// JSONLinesProcessor is the seed's JsonLineProcessor: JSON values, each
// followed by '\n'.
func JSONLinesProcessor() Processor {
	return Processor{Name: NameJSONLines, Serializer: JSONSerializer{}, Aggregator: NewlineAggregator{}}
}

// JSONListProcessor is the seed's JsonListProcessor: one JSON array of
// values per Kinesis record; reading yields the elements.
func JSONListProcessor() Processor {
	return Processor{Name: NameJSONList, Serializer: JSONSerializer{}, Aggregator: ListAggregator{}}
}

// MsgpackProcessor is the seed's MsgpackProcessor: MessagePack values in
// netstring framing.
func MsgpackProcessor() Processor {
	return Processor{Name: NameMsgpack, Serializer: MsgpackSerializer{}, Aggregator: NetstringAggregator{}}
}

// KPLJSONProcessor is the seed's KPLJsonProcessor: JSON values in KPL
// aggregated records.
func KPLJSONProcessor() Processor {
	return Processor{Name: NameKPLJSON, Serializer: JSONSerializer{}, Aggregator: KPLAggregator{}}
}

// KPLStringProcessor is the seed's KPLStringProcessor: UTF-8 strings in KPL
// aggregated records.
func KPLStringProcessor() Processor {
	return Processor{Name: NameKPLString, Serializer: StringSerializer{}, Aggregator: KPLAggregator{}}
}

var processors = []func() Processor{
	StringProcessor, JSONProcessor, JSONLinesProcessor, JSONListProcessor,
	MsgpackProcessor, KPLJSONProcessor, KPLStringProcessor,
}

// Names lists the native processors' names, in a fixed order.
func Names() []string {
	out := make([]string, len(processors))
	for i, p := range processors {
		out[i] = p().Name
	}
	return out
}

// ByName returns the native processor with the given name (see Names).
func ByName(name string) (Processor, error) {
	for _, p := range processors {
		if pr := p(); pr.Name == name {
			return pr, nil
		}
	}
	return Processor{}, fmt.Errorf("records: unknown processor %q (known: %s)", name, strings.Join(Names(), ", "))
}
