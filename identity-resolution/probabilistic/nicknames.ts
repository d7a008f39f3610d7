/**
 * Common English diminutives and their formal names, for the "same name by nickname" level: "Jon Smith"
 * in the ERP and "Jonathan Smith" in the shop. Small on purpose (a few hundred forms); a deployment with
 * other languages extends it through the configuration. Each line: formal name, then its diminutives.
 */
const GROUPS = `
abigail abby abbie gail
alexander alex alec sandy xander lex
alexandra alex alexa sandra sandy lexi
albert al bert bertie
alfred alf alfie fred freddie
andrew andy drew
anthony tony ant
barbara barb barbie babs
benjamin ben benny benji
bernard bernie
catherine cathy kate katie kathy cat kay
katherine kathy kate katie kat kay
kathleen kathy kate katie
charles charlie chuck chas chaz
charlotte lottie charlie
christine chris chrissy tina
christopher chris kit topher
daniel dan danny
david dave davey davy
deborah debbie deb debra
donald don donnie
dorothy dot dottie
edward ed eddie ted teddy ned
elizabeth liz lizzie beth betty bess eliza libby lisa elisa
ellen ellie nell
emily em emmy milly
eugene gene
frances fran frankie
francis frank frankie
frederick fred freddie freddy
gerald gerry jerry
gregory greg
harold harry hal
henry harry hank hal
isabella bella izzy isabel
jacob jake
james jim jimmy jamie
janet jan
jennifer jen jenny jenn
jessica jess jessie
john jack johnny jon
jonathan jon jonny nathan john
joseph joe joey
joshua josh
judith judy jude
katrina kat trina
kenneth ken kenny
lawrence larry laurie
leonard len lenny leo
louis lou
margaret maggie meg peggy marge madge greta
matthew matt matty
michael mike mick mikey mickey
nathaniel nate nat nathan
nicholas nick nicky
patricia pat patty trish tricia
patrick pat paddy
peter pete
philip phil pip
phillip phil
rebecca becky becca
richard rick ricky dick rich richie
robert bob bobby rob robbie bert
ronald ron ronnie
samantha sam sammy
samuel sam sammy
stephen steve stevie
steven steve stevie
susan sue susie suzy
theodore ted teddy theo
thomas tom tommy
timothy tim timmy
victoria vicky tori
vincent vince vinnie
walter walt wally
william bill billy will willie liam
zachary zach zack
`;

const FORMAL = new Map<string, string[]>();
for (const line of GROUPS.trim().split('\n')) {
  const [formal, ...short] = line.trim().split(/\s+/);
  for (const name of [formal, ...short]) {
    const list = FORMAL.get(name) ?? [];
    if (!list.includes(formal)) list.push(formal);
    FORMAL.set(name, list);
  }
}

/** The formal names a given name may stand for ("bob" → ["robert"]); the name itself when it is in no group. */
export function formalNames(name: string): string[] {
  return FORMAL.get(name) ?? [name];
}

/** True when two given names are one name by diminutive ("bob"/"robert", "liz"/"beth"). */
export function sameByNickname(a: string, b: string): boolean {
  if (a === b) return true;
  const fa = FORMAL.get(a);
  const fb = FORMAL.get(b);
  if (!fa || !fb) return false;
  return fa.some((name) => fb.includes(name));
}
