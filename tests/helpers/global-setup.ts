// Replaced by the database harness; kept minimal so pure tests run meanwhile.
export default async function setup(): Promise<void> {}
