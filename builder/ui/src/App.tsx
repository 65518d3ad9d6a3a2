/** The builder's shell: sign-in gate, header, and the routed screens. */
export function App() {
  return (
    <main>
      <h1>Mantle builder</h1>
    </main>
  );
}
