package proc

import (
	"os"
	"os/exec"
	"testing"
)

func TestStartTimeAliveAndStamps(t *testing.T) {
	start, err := StartTime(os.Getpid())
	if err != nil || start == 0 {
		t.Fatalf("StartTime(self) = %d, %v", start, err)
	}
	if !Alive(os.Getpid(), start) || Alive(os.Getpid(), start+1) || Alive(0, start) {
		t.Fatal("Alive does not tell this process from another start time")
	}
	if dead, ok := Dead(Stamp() + "-x"); !ok || dead {
		t.Fatalf("Dead(own stamp) = %v, %v", dead, ok)
	}
	// A process that ran and was reaped is dead for good.
	c := exec.Command("/bin/true")
	if err := c.Start(); err != nil {
		t.Skip(err)
	}
	pid := c.Process.Pid
	st, err := StartTime(pid)
	c.Wait()
	if err != nil {
		t.Skip("the child ended before its start time was read")
	}
	if dead, ok := Dead(stampOf(pid, st)); !ok || !dead {
		t.Fatalf("Dead(reaped child) = %v, %v", dead, ok)
	}
	for _, s := range []string{"", "abc", "12", "12.x", "-1.5", "0.0"} {
		if _, ok := Dead(s); ok {
			t.Errorf("Dead(%q) found a stamp", s)
		}
	}
}

func stampOf(pid int, start uint64) string {
	return itoa(uint64(pid)) + "." + itoa(start)
}

func itoa(n uint64) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}
