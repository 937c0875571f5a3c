// Command misbehave is a test fixture: a record handler whose records say
// how to misbehave (panic, loop, alloc, recurse, flood, file, net, exit,
// crash); any other record is OK.
package main

import (
	"fmt"
	"net"
	"os"
	"strings"

	"github.com/shardwork/shardwork/plugins/abi/guest"
)

func init() {
	guest.Describe(guest.Info{Name: "misbehave", Version: "0.0.1"})
	guest.RegisterHandler(handle)
}

func main() {}

var sink [][]byte

func recurse(n int) int {
	var pad [256]byte
	pad[n%256] = byte(n)
	return recurse(n+1) + int(pad[0])
}

func handle(r *guest.Record, emit guest.Emitter) guest.Result {
	switch string(r.Data) {
	case "panic":
		panic("poison record " + r.SequenceNumber)
	case "loop":
		for {
		}
	case "alloc":
		for {
			b := make([]byte, 16<<20)
			for i := 0; i < len(b); i += 4096 {
				b[i] = 1
			}
			sink = append(sink, b)
		}
	case "recurse":
		return guest.Result{Message: fmt.Sprint(recurse(0))}
	case "flood":
		line := strings.Repeat("x", 1000) + "\n"
		for range 10_000 {
			os.Stdout.WriteString(line)
		}
		return guest.Result{Status: guest.OK, Message: "flooded"}
	case "file":
		b, err := os.ReadFile("/etc/passwd")
		if err != nil {
			return guest.Result{Status: guest.Fail, Message: "open /etc/passwd: " + err.Error()}
		}
		return guest.Result{Status: guest.OK, Message: fmt.Sprintf("read %d bytes of /etc/passwd", len(b))}
	case "net":
		c, err := net.Dial("tcp", "127.0.0.1:6379")
		if err != nil {
			return guest.Result{Status: guest.Fail, Message: "dial: " + err.Error()}
		}
		c.Close()
		return guest.Result{Status: guest.OK, Message: "connected"}
	case "exit":
		os.Exit(3)
	case "crash":
		done := make(chan bool)
		go func() { panic("unrecoverable: panic on another goroutine") }()
		<-done
	}
	emit.Emit(guest.UserRecord{PartitionKey: r.PartitionKey, Data: r.Data})
	return guest.Result{Status: guest.OK}
}
