// sessionStorage when the browser grants it to a third-party iframe, else
// memory: some browsers refuse storage to embedded pages when third-party
// cookies are blocked, and the page must still work (it then forgets its
// session and the events it handled when the iframe reloads).

function pick() {
  try {
    const probe = "gateway.probe";
    window.sessionStorage.setItem(probe, "1");
    window.sessionStorage.removeItem(probe);
    return window.sessionStorage;
  } catch {
    const memory = new Map();
    return {
      getItem: (key) => (memory.has(key) ? memory.get(key) : null),
      setItem: (key, value) => memory.set(key, String(value)),
      removeItem: (key) => memory.delete(key),
    };
  }
}

export const storage = pick();
